{
  "targets": [
    {
      "target_name": "gpg_native",
      "variables": {
        "brew": "<!(node -p \"process.env.HOMEBREW_PREFIX || (require('fs').existsSync('/opt/homebrew') ? '/opt/homebrew' : '/usr/local')\")"
      },
      "sources": [
        "<!@(node -p \"['native', 'native/cpu', 'native/bench'].flatMap(d => require('fs').readdirSync(d).filter(f => f.endsWith('.cc')).sort().map(f => d + '/' + f)).join(' ')\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "conditions": [
        [
          "OS!='mac'",
          {
            "cflags_cc": ["-std=c++17", "-O3", "<!@(node -p \"process.env.GPG_RL_ISA_FLAGS || '-march=native'\")", "-fopenmp", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter", "-Wno-unknown-pragmas"],
            "ldflags": ["-fopenmp", "-Wl,-rpath,'$$ORIGIN'"],
            "libraries": ["-ldnnl", "-lgomp"]
          }
        ],
        [
          "OS=='mac'",
          # untested: Apple clang with Homebrew's onednn and libomp (brew install onednn libomp);
          # HOMEBREW_PREFIX, else /opt/homebrew (Apple silicon) or /usr/local (Intel)
          {
            "include_dirs": ["<(brew)/include", "<(brew)/opt/libomp/include"],
            "libraries": ["-L<(brew)/lib", "-L<(brew)/opt/libomp/lib", "-ldnnl", "-lomp", "-Wl,-rpath,<(brew)/lib", "-Wl,-rpath,<(brew)/opt/libomp/lib"],
            "xcode_settings": {
              "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
              "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
              "GCC_OPTIMIZATION_LEVEL": "3",
              "MACOSX_DEPLOYMENT_TARGET": "11.0",
              "OTHER_CPLUSPLUSFLAGS": ["<!@(node -p \"process.env.GPG_RL_ISA_FLAGS || (process.arch === 'arm64' ? '-mcpu=apple-m1' : '-march=native')\")", "-Xpreprocessor", "-fopenmp", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter", "-Wno-unknown-pragmas"]
            }
          }
        ]
      ]
    }
  ]
}
