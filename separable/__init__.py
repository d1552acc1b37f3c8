"""Gradient descent on linearly separable data: convergence to the hard-margin SVM direction.

Modules
-------
data         the JMLR Fig. 1/Fig. 3 sets, random separable sets with a known SVM, user files
svm          hard-margin SVM (Lawson-Hanson NNLS, polished), KKT residuals, LP certificate
losses       logistic, exp, polynomial-tail, super-exponential-tail losses (sympy + numpy)
optim        GD, momentum, SGD, normalized GD, Adam, custom updates; log-spaced traces
flow         gradient flow integrated in log-time (t up to 1e100 and beyond)
theory       Theorem 3/4/5 predictions (w_tilde, rate constants) and exact small flows
measures     the gaps of Theorem 5 measured on a weight sequence
multiclass   softmax cross-entropy GD and the multiclass max margin (Theorem 7)
experiments  run folders for the figures: ``run_optimizer(SeparableRunConfig(...), root)``
"""
