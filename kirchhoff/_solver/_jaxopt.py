"""The one place kirchhoff imports jaxopt (in maintenance mode upstream; it warns on import)."""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="JAXopt is no longer maintained", category=DeprecationWarning
    )
    import jaxopt
    from jaxopt import implicit_diff, linear_solve

__all__ = ["jaxopt", "implicit_diff", "linear_solve"]
