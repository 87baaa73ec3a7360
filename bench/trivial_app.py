"""The baseline of the endpoint benchmark: a Flask app that answers small JSON, nothing else.

Served by gunicorn with the same workers and threads as the services
(`gunicorn … 'bench.trivial_app:create_app()'`).
"""

from __future__ import annotations

from flask import Flask, jsonify, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/trivial")
    def read():
        return jsonify({"status": "ok"})

    @app.post("/trivial")
    def write():
        body = request.get_json()
        return jsonify({"status": "ok", "fields": len(body or {})}), 201

    return app
