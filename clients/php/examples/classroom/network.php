<?php

/*
 * The classroom network: a teacher closes room 301's network for the lesson.
 * A restore task is scheduled for the end of the lesson, keyed by the room,
 * so there is never more than one: toggling again moves it, "open now"
 * cancels it. network-worker.php carries the restore out when it is due.
 */

declare(strict_types=1);

require 'vendor/autoload.php';

use Defer\Client;
use Defer\Exception\ConflictException;
use Defer\Task;

interface Firewall
{
    public function block(int $room): void;

    public function unblock(int $room): void;
}

final class ClassroomNetwork
{
    public function __construct(private readonly Client $defer, private readonly Firewall $firewall)
    {
    }

    /** Closes the room's network until $until; it comes back by itself then. */
    public function close(int $room, DateTimeInterface $until): Task
    {
        $this->firewall->block($room);

        return $this->defer->dispatch('network', ['room' => $room, 'action' => 'restore'], [
            'run_at' => $until,
            'key' => "room-$room",
            'replace' => true, // toggling again moves the one restore, never adds a second
        ]);
    }

    /** Opens the room's network now: the scheduled restore is no longer needed. */
    public function openNow(int $room): ?Task
    {
        try {
            $cancelled = $this->defer->cancelKey('network', "room-$room"); // null: none was scheduled
        } catch (ConflictException) {
            $cancelled = null; // a worker is restoring it at this very moment
        }
        $this->firewall->unblock($room);

        return $cancelled;
    }
}

final class EchoFirewall implements Firewall
{
    public function block(int $room): void
    {
        echo "firewall: room $room blocked\n";
    }

    public function unblock(int $room): void
    {
        echo "firewall: room $room open\n";
    }
}

$network = new ClassroomNetwork(new Client(getenv('DEFER_URL') ?: 'http://127.0.0.1:11380'), new EchoFirewall());
$lessonEnd = new DateTimeImmutable('+45 minutes');

// The teacher closes the network for the lesson.
$restore = $network->close(301, $lessonEnd);
printf("restore task %d: %s until %s (new: %s)\n", $restore->id, $restore->state->value,
    $restore->runAt?->format('H:i:s'), $restore->isNew() ? 'yes' : 'no');

// The teacher toggles again, for ten more minutes: the same task, moved.
$moved = $network->close(301, $lessonEnd->modify('+10 minutes'));
printf("restore task %d: %s until %s (replaced: %s)\n", $moved->id, $moved->state->value,
    $moved->runAt?->format('H:i:s'), $moved->replaced ? 'yes' : 'no');

// The lesson ends early: "open now" cancels the scheduled restore.
$cancelled = $network->openNow(301);
printf("restore task %d: %s\n", $cancelled?->id, $cancelled?->state->value);

// Opening again finds nothing scheduled.
var_dump($network->openNow(301));
