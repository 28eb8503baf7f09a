"""Portal pages of the billing app: thin views over the selectors."""
