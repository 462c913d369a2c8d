"""offerloop's Azure Functions app: composition only (see functions/ for the triggers)."""
import logging

import azure.functions as func

from functions import events, health
from functions import coldstart, offers, products
from functions import ingest
from functions import simulation
from functions import retrain
from functions import personalizer
from functions import pages, stats

logging.getLogger("azure").setLevel(logging.WARNING)  # the SDKs log every HTTP call at INFO

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health.bp)
app.register_functions(events.bp)
app.register_functions(offers.bp)
app.register_functions(products.bp)
app.register_functions(coldstart.bp)
app.register_functions(ingest.bp)
app.register_functions(simulation.bp)
app.register_functions(retrain.bp)
app.register_functions(personalizer.bp)
app.register_functions(stats.bp)
app.register_functions(pages.bp)
