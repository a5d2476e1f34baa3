{
  "targets": [
    {
      "target_name": "gpg_native",
      "sources": [
        "<!@(node -p \"['native', 'native/cpu', 'native/bench'].flatMap(d => require('fs').readdirSync(d).filter(f => f.endsWith('.cc')).sort().map(f => d + '/' + f)).join(' ')\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "<!@(node -p \"process.env.GPG_RL_ISA_FLAGS || '-march=native'\")", "-fopenmp", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter", "-Wno-unknown-pragmas"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl", "-lgomp"]
    }
  ]
}
