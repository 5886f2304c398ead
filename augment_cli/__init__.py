"""Console entry points of mmel_hf: thin shells over the library."""
