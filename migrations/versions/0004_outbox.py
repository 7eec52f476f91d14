"""outbox: after-commit work written with the change that asks for it

Revision ID: outbox
Revises: customer_restricted
"""
from alembic import op
import sqlalchemy as sa


revision = 'outbox'
down_revision = 'customer_restricted'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'outbox_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task', sa.String(length=200), nullable=False),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.Column('claimed_until', sa.DateTime(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('failed_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_jobs')),
    )
    op.create_index('ix_outbox_jobs_due_at', 'outbox_jobs', ['due_at'], unique=False)


def downgrade():
    op.drop_index('ix_outbox_jobs_due_at', table_name='outbox_jobs')
    op.drop_table('outbox_jobs')
