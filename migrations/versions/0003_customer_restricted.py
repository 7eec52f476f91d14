"""customer restricted flag: a record only staff with a need may read (crm.visibility)

Revision ID: customer_restricted
Revises: data_protection
"""
from alembic import op
import sqlalchemy as sa


revision = 'customer_restricted'
down_revision = 'data_protection'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('restricted', sa.Boolean(), server_default=sa.text('false'), nullable=False))


def downgrade():
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('restricted')
