"""chat first assigned: when the first agent took a chat, so its handle time covers every agent who held it

Revision ID: chat_first_assigned
Revises: session_stamps
"""
from alembic import op
import sqlalchemy as sa


revision = 'chat_first_assigned'
down_revision = 'session_stamps'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('chat_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_assigned_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('chat_sessions', schema=None) as batch_op:
        batch_op.drop_column('first_assigned_at')
