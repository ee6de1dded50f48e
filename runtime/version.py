"""The runtime's version, reported in initializeRuntime and run settings."""

RUNTIME_VERSION = "0.1.0"
