"""Learning rules: EqProp estimators and the autodiff references they are checked against."""
