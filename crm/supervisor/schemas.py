"""Shapes the supervisor area answers in, shared by its API and the dashboard's pushes."""
from marshmallow import Schema, fields


class BannerOut(Schema):
    id = fields.Integer()
    message = fields.String()
    public = fields.Boolean()
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)


class BannerList(Schema):
    items = fields.List(fields.Nested(BannerOut))
