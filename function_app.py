"""offerloop's Azure Functions app: composition only (see functions/ for the triggers)."""
import logging

import azure.functions as func

from functions import health

logging.getLogger("azure").setLevel(logging.WARNING)  # the SDKs log every HTTP call at INFO

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health.bp)
