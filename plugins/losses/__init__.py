"""Loss plugins: adversarial losses and regularisers."""
