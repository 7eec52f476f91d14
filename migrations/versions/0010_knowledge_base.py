"""knowledge base: help articles with versions and feedback, service notices, self-served journeys

Revision ID: knowledge_base
Revises: reply_markers
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = 'knowledge_base'
down_revision = 'reply_markers'
branch_labels = None
depends_on = None

# A snapshot of crm/models/knowledge.py's search DDL as of this revision (migrations never import the app).
SQLITE_SEARCH_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS knowledge_search USING fts5(title, keywords, summary, body, "
    "content='knowledge_articles', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS knowledge_search_ai AFTER INSERT ON knowledge_articles BEGIN "
    "INSERT INTO knowledge_search(rowid, title, keywords, summary, body) "
    "VALUES (new.id, new.title, new.keywords, new.summary, new.body); END",
    "CREATE TRIGGER IF NOT EXISTS knowledge_search_ad AFTER DELETE ON knowledge_articles BEGIN "
    "INSERT INTO knowledge_search(knowledge_search, rowid, title, keywords, summary, body) "
    "VALUES ('delete', old.id, old.title, old.keywords, old.summary, old.body); END",
    "CREATE TRIGGER IF NOT EXISTS knowledge_search_au AFTER UPDATE OF title, keywords, summary, body "
    "ON knowledge_articles BEGIN "
    "INSERT INTO knowledge_search(knowledge_search, rowid, title, keywords, summary, body) "
    "VALUES ('delete', old.id, old.title, old.keywords, old.summary, old.body); "
    "INSERT INTO knowledge_search(rowid, title, keywords, summary, body) "
    "VALUES (new.id, new.title, new.keywords, new.summary, new.body); END",
)
POSTGRESQL_SEARCH_DDL = (
    "CREATE OR REPLACE FUNCTION knowledge_articles_search_vector() RETURNS trigger AS $$ BEGIN "
    "NEW.search_vector := "
    "setweight(to_tsvector('english', coalesce(NEW.title, '') || ' ' || coalesce(NEW.keywords, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(NEW.summary, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(NEW.body, '')), 'C'); RETURN NEW; END $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS knowledge_articles_search_vector ON knowledge_articles",
    "CREATE TRIGGER knowledge_articles_search_vector BEFORE INSERT OR UPDATE OF title, keywords, summary, body "
    "ON knowledge_articles FOR EACH ROW EXECUTE FUNCTION knowledge_articles_search_vector()",
)


def upgrade():
    op.create_table('service_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('areas', sa.String(length=500), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_service_notices_created_by_id_users')),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_service_notices_service_id_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_notices'))
    )
    with op.batch_alter_table('service_notices', schema=None) as batch_op:
        batch_op.create_index('ix_service_notices_live', ['ends_at', 'starts_at'], unique=False)

    op.create_table('knowledge_article_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('categories', sa.String(length=500), nullable=False),
    sa.Column('keywords', sa.String(length=500), nullable=False),
    sa.Column('audience', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=True),
    sa.Column('changed', sa.String(length=300), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('edited_by_id', sa.Integer(), nullable=True),
    sa.Column('edited_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['knowledge_articles.id'], name=op.f('fk_knowledge_article_versions_article_id_knowledge_articles')),
    sa.ForeignKeyConstraint(['edited_by_id'], ['users.id'], name=op.f('fk_knowledge_article_versions_edited_by_id_users')),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_knowledge_article_versions_service_id_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_knowledge_article_versions')),
    sa.UniqueConstraint('article_id', 'version', name=op.f('uq_knowledge_article_versions_article_id_version'))
    )
    op.create_table('knowledge_feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('useful', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['knowledge_articles.id'], name=op.f('fk_knowledge_feedback_article_id_knowledge_articles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_knowledge_feedback'))
    )
    with op.batch_alter_table('knowledge_feedback', schema=None) as batch_op:
        batch_op.create_index('ix_knowledge_feedback_article', ['article_id', 'created_at'], unique=False)

    op.create_table('self_service_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('journey', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('surface', sa.String(length=12), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=True),
    sa.Column('service_id', sa.Integer(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['knowledge_articles.id'], name=op.f('fk_self_service_events_article_id_knowledge_articles')),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_self_service_events_service_id_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_self_service_events')),
    sa.UniqueConstraint('journey', 'kind', name=op.f('uq_self_service_events_journey_kind'))
    )
    with op.batch_alter_table('self_service_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_self_service_events_article_id'), ['article_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_self_service_events_occurred_at'), ['occurred_at'], unique=False)

    op.create_table('knowledge_article_uses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('used_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['knowledge_articles.id'], name=op.f('fk_knowledge_article_uses_article_id_knowledge_articles')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_knowledge_article_uses_contact_id_contacts')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_knowledge_article_uses_conversation_id_conversations')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_knowledge_article_uses_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_knowledge_article_uses'))
    )
    with op.batch_alter_table('knowledge_article_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_knowledge_article_uses_article_id'), ['article_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_knowledge_article_uses_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_knowledge_article_uses_conversation_id'), ['conversation_id'], unique=False)

    with op.batch_alter_table('knowledge_articles', schema=None) as batch_op:
        # Server defaults let the rows a council already has take the new NOT NULL columns.
        batch_op.add_column(sa.Column('slug', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('summary', sa.String(length=500), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('categories', sa.String(length=500), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('keywords', sa.String(length=500), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('audience', sa.String(length=10), nullable=False, server_default='public'))
        batch_op.add_column(sa.Column('status', sa.String(length=12), nullable=False, server_default='published'))
        batch_op.add_column(sa.Column('review_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('useful_yes', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('useful_no', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('created_at', sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(), nullable=False, server_default=sa.func.current_timestamp()))
        batch_op.add_column(sa.Column('published_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('search_vector', sa.Text().with_variant(postgresql.TSVECTOR(), 'postgresql'), nullable=True))
    # Existing signposting articles become published public help; their external link joins the body.
    op.execute("UPDATE knowledge_articles SET slug = 'article-' || id, published_at = created_at, "
               "body = CASE WHEN url IS NULL OR url = '' THEN body ELSE body || '\n\n[More information](' || url || ')' END")
    with op.batch_alter_table('knowledge_articles', schema=None) as batch_op:
        batch_op.alter_column('slug', existing_type=sa.String(length=120), nullable=False)
        batch_op.drop_column('url')
        batch_op.create_index('ix_knowledge_articles_search_vector', ['search_vector'], unique=False, postgresql_using='gin')
        batch_op.create_index(batch_op.f('ix_knowledge_articles_service_id'), ['service_id'], unique=False)
        batch_op.create_index('ix_knowledge_articles_status_audience', ['status', 'audience'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_knowledge_articles_slug'), ['slug'])
        batch_op.create_foreign_key(batch_op.f('fk_knowledge_articles_owner_id_users'), 'users', ['owner_id'], ['id'])
    # Full-text search, after the batch above (which rebuilds the table on SQLite, dropping triggers).
    if op.get_bind().dialect.name == 'sqlite':
        for statement in SQLITE_SEARCH_DDL:
            op.execute(statement)
        op.execute("INSERT INTO knowledge_search(knowledge_search) VALUES ('rebuild')")
    elif op.get_bind().dialect.name == 'postgresql':
        for statement in POSTGRESQL_SEARCH_DDL:
            op.execute(statement)
        op.execute("UPDATE knowledge_articles SET title = title")


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        for name in ('knowledge_search_ai', 'knowledge_search_ad', 'knowledge_search_au'):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS knowledge_search")
    elif op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS knowledge_articles_search_vector ON knowledge_articles")
        op.execute("DROP FUNCTION IF EXISTS knowledge_articles_search_vector()")
    with op.batch_alter_table('knowledge_articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('url', sa.VARCHAR(length=500), nullable=True))
        batch_op.drop_constraint(batch_op.f('fk_knowledge_articles_owner_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_knowledge_articles_slug'), type_='unique')
        batch_op.drop_index('ix_knowledge_articles_status_audience')
        batch_op.drop_index(batch_op.f('ix_knowledge_articles_service_id'))
        batch_op.drop_index('ix_knowledge_articles_search_vector', postgresql_using='gin')
        batch_op.drop_column('search_vector')
        batch_op.drop_column('published_at')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('created_at')
        batch_op.drop_column('useful_no')
        batch_op.drop_column('useful_yes')
        batch_op.drop_column('version')
        batch_op.drop_column('owner_id')
        batch_op.drop_column('review_on')
        batch_op.drop_column('status')
        batch_op.drop_column('audience')
        batch_op.drop_column('keywords')
        batch_op.drop_column('categories')
        batch_op.drop_column('summary')
        batch_op.drop_column('slug')
    op.execute("UPDATE knowledge_articles SET url = NULL")

    with op.batch_alter_table('knowledge_article_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_knowledge_article_uses_conversation_id'))
        batch_op.drop_index(batch_op.f('ix_knowledge_article_uses_contact_id'))
        batch_op.drop_index(batch_op.f('ix_knowledge_article_uses_article_id'))

    op.drop_table('knowledge_article_uses')
    with op.batch_alter_table('self_service_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_self_service_events_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_self_service_events_article_id'))

    op.drop_table('self_service_events')
    with op.batch_alter_table('knowledge_feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_knowledge_feedback_article')

    op.drop_table('knowledge_feedback')
    op.drop_table('knowledge_article_versions')
    with op.batch_alter_table('service_notices', schema=None) as batch_op:
        batch_op.drop_index('ix_service_notices_live')

    op.drop_table('service_notices')
