"""HTTP clients of the outside world's APIs (carrier intercepts, refunds) and the retry rules they share."""
