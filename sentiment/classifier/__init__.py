"""The product: what trains, scores and serves the classifier (data < model < the rest)."""
