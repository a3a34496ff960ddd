<?php

/*
 * The end of a lesson: php-fpm runs this script when a room's restore task
 * is due (deferd's fastcgi target pushes it at the task's run time). It opens
 * the room's network again - if the closing it was scheduled for is still
 * the one in force. Had the teacher opened the room by hand, or closed it
 * again while this very task was already running, there is nothing to undo.
 *
 * A payload for a room that does not exist throws: Defer\Handler makes that
 * a failed attempt, with the exception as the reason deferd keeps.
 */

declare(strict_types=1);

require dirname(__DIR__) . '/bootstrap.php';

use Defer\Handler;
use Defer\PushedTask;

Handler::run(static function (PushedTask $task): void {
    $room = $task->payload['room'] ?? throw new InvalidArgumentException('the payload has no "room"');
    $token = $task->payload['token'] ?? throw new InvalidArgumentException('the payload has no "token"');

    $rooms = new Rooms(setting('ROOMS_FILE'), ROOMS);
    if (!$rooms->restore($room, $token, "Room $room: the lesson is over, its network is open again (task {$task->id})")) {
        $rooms->note("Task {$task->id}: room $room was opened or closed again since, nothing to restore");
    }
});
