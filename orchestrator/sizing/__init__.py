"""What a model needs: the Llama catalog, GPU memory sizing, and the roofline throughput model."""
