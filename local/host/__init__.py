"""offerloop's development Functions host: runs a Python v2-model function app like `func start`.

Run `python -m local.host --app-dir . --port 7071`. See __main__.py and runtime.py.
"""
