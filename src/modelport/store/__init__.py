"""The local, versioned store of pulled models: verified blobs, manifests and an index."""
