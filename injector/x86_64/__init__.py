"""x86-64 instruction decoding, relocation and trampolines: pure bytes in, bytes out."""
