"""NSMC sentiment: TF-IDF + logistic regression, a small BERT pretrained here and fine-tuned, and
their ensemble."""
