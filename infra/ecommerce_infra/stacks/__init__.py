"""The stacks of the aws deployment, one per concern."""
