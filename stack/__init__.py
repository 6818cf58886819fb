"""The local stack: emulators, the storage bridge, local registry and endpoint, wired together."""
