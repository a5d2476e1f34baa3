// A reward for cost measurements on random-weight models (README "A 0.5B model on your CPU"): the
// share of even token ids in a completion. It varies within every group, so no group has identical
// rewards and every GPG step trains (with a task reward a random model scores 0 everywhere and
// each step is skipped, or resampled up to max_resample_rounds times). Not a task reward.
export default function costReward({ completionIds }) {
  return completionIds.map((ids) => ids.filter((i) => i % 2 === 0).length / Math.max(1, ids.length));
}
