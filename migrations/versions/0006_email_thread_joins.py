"""email thread joins: threads come out the same in any arrival order

Revision ID: email_thread_joins
Revises: identity_trust
"""
from alembic import op
import sqlalchemy as sa



revision = 'email_thread_joins'
down_revision = 'identity_trust'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'email_thread_refs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('referenced_id', sa.String(length=500), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=True),
        sa.Column('inbound_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'],
                                name=op.f('fk_email_thread_refs_conversation_id_conversations')),
        sa.ForeignKeyConstraint(['inbound_id'], ['inbound_emails.id'],
                                name=op.f('fk_email_thread_refs_inbound_id_inbound_emails')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_email_thread_refs')),
    )
    op.create_index(op.f('ix_email_thread_refs_referenced_id'), 'email_thread_refs', ['referenced_id'])
    op.create_index(op.f('ix_email_thread_refs_conversation_id'), 'email_thread_refs', ['conversation_id'])
    op.create_index(op.f('ix_email_thread_refs_inbound_id'), 'email_thread_refs', ['inbound_id'])
    with op.batch_alter_table('conversations') as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_conversations_merged_into_id_conversations'), 'conversations',
                                    ['merged_into_id'], ['id'])
    with op.batch_alter_table('messages') as batch_op:
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('messages') as batch_op:
        batch_op.drop_column('sent_at')
    with op.batch_alter_table('conversations') as batch_op:
        batch_op.drop_constraint(op.f('fk_conversations_merged_into_id_conversations'), type_='foreignkey')
        batch_op.drop_column('merged_into_id')
    op.drop_index(op.f('ix_email_thread_refs_inbound_id'), table_name='email_thread_refs')
    op.drop_index(op.f('ix_email_thread_refs_conversation_id'), table_name='email_thread_refs')
    op.drop_index(op.f('ix_email_thread_refs_referenced_id'), table_name='email_thread_refs')
    op.drop_table('email_thread_refs')
