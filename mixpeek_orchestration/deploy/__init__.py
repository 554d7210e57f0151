"""Production deployment: tenant overrides files and the Kubernetes manifests rendered from them."""
