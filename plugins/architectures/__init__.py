"""Architecture plugins: generators and discriminators."""
