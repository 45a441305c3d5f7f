"""The verification community's formats: networks as ONNX, solver queries as VNN-LIB, and networks
trained elsewhere read back from ONNX for fvtui's verifier."""
