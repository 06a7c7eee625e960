"""One module per `govex` command group; each is thin and calls the packages' public APIs."""
