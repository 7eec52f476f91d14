"""Schemas of the knowledge API: articles and service notices (inputs strict, outputs documented)."""
from flask import url_for
from marshmallow import Schema, ValidationError, fields, validate

from ..api.schemas import AwareDateTime, StrictSchema, Text
from ..models import ARTICLE_AUDIENCES, ARTICLE_STATUSES

Words = lambda **kw: fields.List(fields.String(validate=validate.Length(min=1, max=60)),  # noqa: E731
                                 validate=validate.Length(max=30), **kw)


class ArticleListArgs(StrictSchema):
    q = Text(200, load_default="")
    audience = fields.String(load_default=None, validate=validate.OneOf(ARTICLE_AUDIENCES))
    service = Text(40, load_default=None)
    category = Text(60, load_default=None)
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class ArticleIn(StrictSchema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    summary = Text(500, load_default="")
    body = Text(50000, load_default="", metadata={"description": "Markdown (a safe subset is rendered)"})
    audience = fields.String(load_default="public", validate=validate.OneOf(ARTICLE_AUDIENCES))
    service = Text(40, load_default=None, allow_none=True, metadata={"description": "service code"})
    categories = Words(load_default=None)
    keywords = Words(load_default=None)
    status = fields.String(load_default="draft", validate=validate.OneOf(ARTICLE_STATUSES[:2]))
    review_on = fields.Date(load_default=None, allow_none=True)


class ArticlePatch(StrictSchema):
    title = fields.String(validate=validate.Length(min=1, max=200))
    summary = Text(500)
    body = Text(50000)
    audience = fields.String(validate=validate.OneOf(ARTICLE_AUDIENCES))
    service = Text(40, allow_none=True)
    categories = Words()
    keywords = Words()
    status = fields.String(validate=validate.OneOf(ARTICLE_STATUSES))
    review_on = fields.Date(allow_none=True)
    note = Text(300, metadata={"description": "what this change is for (kept with the version)"})


class ArticleSummaryOut(Schema):
    id = fields.Integer()
    slug = fields.String()
    title = fields.String()
    summary = fields.String()
    audience = fields.String()
    status = fields.String()
    service = fields.Function(lambda a: a.service.code if a.service else None)
    url = fields.Function(lambda a: url_for("help.article", slug=a.slug, _external=True) if a.audience == "public"
                          else url_for("knowledge.article_page", article_id=a.id, _external=True))


class ArticleVersionOut(Schema):
    version = fields.Integer()
    changed = fields.Function(lambda v: (v.changed or "").split())
    note = fields.String(allow_none=True)
    edited_by = fields.Function(lambda v: v.edited_by.name if v.edited_by else None)
    edited_at = AwareDateTime()


class ArticleOut(ArticleSummaryOut):
    body = fields.String()
    categories = fields.Function(lambda a: a.category_codes())
    keywords = fields.Function(lambda a: (a.keywords or "").split())
    version = fields.Integer()
    review_on = fields.Date(allow_none=True)
    owner = fields.Function(lambda a: a.owner.name if a.owner else None)
    useful_yes = fields.Integer()
    useful_no = fields.Integer()
    published_at = AwareDateTime(allow_none=True)
    updated_at = AwareDateTime()
    versions = fields.List(fields.Nested(ArticleVersionOut))


class ArticleListOut(Schema):
    items = fields.List(fields.Nested(ArticleSummaryOut))


class AreasField(fields.Field):
    """Postcode districts, as a list or as one space- or comma-separated string."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"description": "postcode districts: a list or a space/comma list", "oneOf": [
            {"type": "string", "maxLength": 500},
            {"type": "array", "items": {"type": "string", "maxLength": 10}, "maxItems": 100}]}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and len(value) <= 500:
            return value
        if isinstance(value, list) and len(value) <= 100 and all(isinstance(v, str) and len(v) <= 10 for v in value):
            return value
        raise ValidationError("give postcode districts as a list or a space- or comma-separated string")


class NoticeListArgs(StrictSchema):
    service = Text(40, load_default=None)
    postcode = Text(10, load_default=None)


class NoticeIn(StrictSchema):
    service = fields.String(required=True, validate=validate.Length(min=1, max=40))
    message = fields.String(required=True, validate=validate.Length(min=1, max=500))
    areas = AreasField(load_default="")
    starts_at = AwareDateTime(load_default=None, allow_none=True)
    ends_at = AwareDateTime(required=True)


class NoticeOut(Schema):
    id = fields.Integer()
    service = fields.Function(lambda n: n.service.code)
    service_name = fields.Function(lambda n: n.service.name)
    message = fields.String()
    areas = fields.Function(lambda n: n.districts())
    starts_at = AwareDateTime()
    ends_at = AwareDateTime()
    withdrawn_at = AwareDateTime(allow_none=True)


class NoticeListOut(Schema):
    items = fields.List(fields.Nested(NoticeOut))
