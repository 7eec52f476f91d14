"""identity trust: where an identity came from, main details, case contact address, possible duplicates, undoable merges

Revision ID: identity_trust
Revises: outbox
"""
from alembic import op
import sqlalchemy as sa


revision = 'identity_trust'
down_revision = 'outbox'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('customer_merges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('moved', sa.JSON(), nullable=False),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('undone_at', sa.DateTime(), nullable=True),
    sa.Column('undone_by_id', sa.Integer(), nullable=True),
    sa.Column('undo_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_customer_merges_actor_id_users')),
    sa.ForeignKeyConstraint(['source_id'], ['customers.id'], name=op.f('fk_customer_merges_source_id_customers')),
    sa.ForeignKeyConstraint(['target_id'], ['customers.id'], name=op.f('fk_customer_merges_target_id_customers')),
    sa.ForeignKeyConstraint(['undone_by_id'], ['users.id'], name=op.f('fk_customer_merges_undone_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_merges'))
    )
    with op.batch_alter_table('customer_merges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_merges_source_id'), ['source_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_merges_target_id'), ['target_id'], unique=False)

    op.create_table('possible_duplicates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('other_id', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('merge_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_possible_duplicates_customer_id_customers')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_possible_duplicates_decided_by_id_users')),
    sa.ForeignKeyConstraint(['merge_id'], ['customer_merges.id'], name=op.f('fk_possible_duplicates_merge_id_customer_merges')),
    sa.ForeignKeyConstraint(['other_id'], ['customers.id'], name=op.f('fk_possible_duplicates_other_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_possible_duplicates'))
    )
    with op.batch_alter_table('possible_duplicates', schema=None) as batch_op:
        batch_op.create_index('ix_possible_duplicates_customer', ['customer_id'], unique=False)
        batch_op.create_index('ix_possible_duplicates_other', ['other_id'], unique=False)
        batch_op.create_index('ix_possible_duplicates_status', ['status', 'created_at'], unique=False)

    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('main', sa.Boolean(), server_default=sa.text('false'), nullable=False))

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('contact_phone', sa.String(length=20), nullable=True))

    with op.batch_alter_table('customer_identities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('verified_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('main', sa.Boolean(), server_default=sa.text('false'), nullable=False))


def downgrade():
    with op.batch_alter_table('customer_identities', schema=None) as batch_op:
        batch_op.drop_column('main')
        batch_op.drop_column('verified_at')
        batch_op.drop_column('source')

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('contact_phone')
        batch_op.drop_column('contact_email')

    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.drop_column('main')

    op.drop_table('possible_duplicates')
    with op.batch_alter_table('customer_merges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_merges_target_id'))
        batch_op.drop_index(batch_op.f('ix_customer_merges_source_id'))

    op.drop_table('customer_merges')
