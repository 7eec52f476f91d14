"""reply markers and canned replies per channel: warn a colleague already replying; canned replies for one channel

Revision ID: reply_markers
Revises: chat_first_assigned
"""
from alembic import op
import sqlalchemy as sa


revision = 'reply_markers'
down_revision = 'chat_first_assigned'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'reply_markers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('conversation_id', 'user_id'),
    )
    with op.batch_alter_table('reply_markers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reply_markers_conversation_id'), ['conversation_id'], unique=False)
    with op.batch_alter_table('canned_replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=20), nullable=True))


def downgrade():
    with op.batch_alter_table('canned_replies', schema=None) as batch_op:
        batch_op.drop_column('channel')
    with op.batch_alter_table('reply_markers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reply_markers_conversation_id'))
    op.drop_table('reply_markers')
