"""The API's routers, one module per area; each exposes `router: APIRouter` (included by adapter/api/app.py)."""
