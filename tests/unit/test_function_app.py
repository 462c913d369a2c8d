"""The function app indexes without a host (what FunctionApp.get_functions() reports)."""
import json

import function_app


def _bindings(name):
    functions = {fn.get_function_name(): fn for fn in function_app.app.get_functions()}
    return json.loads(functions[name].get_function_json())["bindings"]


def test_health_is_an_anonymous_get_on_the_health_route_returning_http():
    assert _bindings("get_health") == [
        {"direction": "IN", "type": "httpTrigger", "name": "req", "methods": ["GET"],
         "authLevel": "ANONYMOUS", "route": "health"},
        {"direction": "OUT", "type": "http", "name": "$return"},
    ]
