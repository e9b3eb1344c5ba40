-- The task queue moves from dramatiq-pg 0.x to dramatiq-postgres 1.x, whose tables have
-- another shape in the same schema "dramatiq" (0009 created the old ones). Drop the old
-- ones; the migration runner then has dramatiq-postgres create its own (its documented
-- init, adapters.task_queue.create_schema). Tasks still waiting in the old queue are not
-- lost: every one is a hand-out the pump makes again once its lease (delivery_dispatch)
-- ends, from the deliveries read model.
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM information_schema.tables
        WHERE table_schema = 'dramatiq' AND table_name = 'queue'
    ) AND NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'dramatiq' AND table_name = 'queue' AND column_name = 'available_at'
    ) THEN
        DROP TABLE dramatiq.queue;
        DROP TYPE IF EXISTS dramatiq.state;
    END IF;
END
$$;
