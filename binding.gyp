{
  "targets": [
    {
      "target_name": "arpix_native",
      "sources": [
        "native/addon.cc",
        "native/binding.cc",
        "native/elementwise.cc",
        "native/reduce.cc",
        "native/movement.cc",
        "native/fused.cc",
        "native/onednn_common.cc",
        "native/onednn_conv.cc",
        "native/onednn_matmul.cc",
        "native/winograd_rows.cc",
        "native/thread_products.cc",
        "native/row_conv.cc",
        "native/lstm_scan.cc",
        "native/optim.cc",
        "native/transformer.cc",
        "native/attention.cc",
        "native/cached_step.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-O2"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-fopenmp", "-fexceptions", "-fno-math-errno", "-fno-trapping-math"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl", "-fopenmp"]
    }
  ]
}
