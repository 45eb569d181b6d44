"""Lectern's development harness, not part of the product: the demo corpus and its loopback server, generated
videos with known slide changes and recorded-lecture layouts, the tiny local models that stand in where no real
model can be had offline, and the demo and `lectern ui` drivers. The CLI's dev commands (`demo`, `ui`,
`models build-tiny`) import it lazily; tests and benchmarks use it directly. It imports the product; the product
never imports it at module level."""
