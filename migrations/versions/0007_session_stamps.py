"""session stamps: a new stamp ends a user's sessions; staff sockets recorded so they can be closed

Revision ID: session_stamps
Revises: email_thread_joins
"""
from alembic import op
import sqlalchemy as sa


revision = 'session_stamps'
down_revision = 'email_thread_joins'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_stamp', sa.String(length=32), server_default='0', nullable=False))
    op.create_table('staff_sockets',
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('namespace', sa.String(length=20), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=True),
    sa.Column('connected_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], name=op.f('fk_staff_sockets_token_id_api_tokens'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_staff_sockets_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_staff_sockets'))
    )
    with op.batch_alter_table('staff_sockets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sockets_token_id'), ['token_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_sockets_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('staff_sockets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sockets_user_id'))
        batch_op.drop_index(batch_op.f('ix_staff_sockets_token_id'))
    op.drop_table('staff_sockets')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_stamp')
