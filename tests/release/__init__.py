"""Release tests: the built sdist and wheel, installed and run away from the checkout."""
