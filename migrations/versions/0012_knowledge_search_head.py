"""knowledge search head: title, keywords and summary in their own tsvector, ranked without the body

Revision ID: knowledge_search_head
Revises: transcript_once
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = 'knowledge_search_head'
down_revision = 'transcript_once'
branch_labels = None
depends_on = None

# A snapshot of crm/models/knowledge.py's trigger as of this revision (migrations never import the app).
SEARCH_FUNCTION = (
    "CREATE OR REPLACE FUNCTION knowledge_articles_search_vector() RETURNS trigger AS $$ BEGIN "
    "NEW.search_vector := "
    "setweight(to_tsvector('english', coalesce(NEW.title, '') || ' ' || coalesce(NEW.keywords, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(NEW.summary, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(NEW.body, '')), 'C'); "
    "NEW.search_head := "
    "setweight(to_tsvector('english', coalesce(NEW.title, '') || ' ' || coalesce(NEW.keywords, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(NEW.summary, '')), 'B'); "
    "RETURN NEW; END $$ LANGUAGE plpgsql"
)


def upgrade():
    # add_column without a batch: on SQLite a batch would rebuild the table and drop its search triggers.
    op.add_column('knowledge_articles', sa.Column(
        'search_head', sa.Text().with_variant(postgresql.TSVECTOR(), 'postgresql'), nullable=True))
    # fastupdate off: articles change rarely and a search must not scan GIN's pending list.
    op.create_index('ix_knowledge_articles_search_head', 'knowledge_articles', ['search_head'], unique=False,
                    postgresql_using='gin', postgresql_with={'fastupdate': 'off'})
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER INDEX ix_knowledge_articles_search_vector SET (fastupdate = off)")
        op.execute(SEARCH_FUNCTION)
        op.execute("UPDATE knowledge_articles SET title = title")


def downgrade():
    op.drop_index('ix_knowledge_articles_search_head', table_name='knowledge_articles', postgresql_using='gin')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("ALTER TABLE knowledge_articles DROP COLUMN search_head")  # SQLite 3.35+: no table rebuild
    else:
        op.drop_column('knowledge_articles', 'search_head')
