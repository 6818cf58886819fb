"""Pipeline components: plain typed logic (tested without kfp) and thin ``@dsl.component`` wrappers.

Heavy libraries (pandas, sklearn, scipy) are imported inside functions: this package is imported
by the compiler and the CLI, where they are not needed.
"""
