"""What every SQL backend shares: compiling the domain's Ibis expressions for
its dialect (once per expression), and translating driver errors with the
statement attached. A backend gives its dialect name and its error classes."""
