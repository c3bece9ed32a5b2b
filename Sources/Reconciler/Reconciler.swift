// Reconciler
