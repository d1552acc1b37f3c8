"""Gradient descent on linearly separable data: convergence to the hard-margin SVM direction."""
