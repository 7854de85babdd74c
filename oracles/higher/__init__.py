"""Beyond first derivatives: jets, nested grads, forward mode, torch.func and vector-Jacobian products."""
