"""Read models: the queries behind `intercept explain`, `ledger`, `report` and the operator
console, one set that all of them use (issue 13). They only read."""
