"""UCI Wine Quality: regression with scikit-learn models and a torch MLP."""
