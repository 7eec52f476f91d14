# Read by the flask command (python-dotenv): `flask crm ...` and `flask db upgrade` from the project root.
FLASK_APP=wsgi
