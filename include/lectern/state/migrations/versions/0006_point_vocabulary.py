"""knowledge_points.vocabulary: a point's own words, given to Whisper as its initial prompt

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('knowledge_points', schema=None) as batch_op:
        batch_op.add_column(sa.Column('vocabulary', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('knowledge_points', schema=None) as batch_op:
        batch_op.drop_column('vocabulary')
