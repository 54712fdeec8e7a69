"""Network export and runners (ONNX, onnxruntime, TensorRT); optional back-ends load lazily."""
