<?php

/*
 * POST /action.php: the teacher's buttons.
 *
 * close - closes the room's network and schedules its restore for the end of
 *   the lesson: one task per room, keyed by the room and dispatched with
 *   replace, so that closing again moves that one task to the new end
 *   instead of adding a second.
 * open - cancels the room's restore by its key and opens the network now.
 */

declare(strict_types=1);

require dirname(__DIR__) . '/bootstrap.php';

use Defer\Client;
use Defer\Exception\ConflictException;
use Defer\Exception\DeferException;

/** Back to the page, with an error to show if there is one. */
function back(?string $error = null): never
{
    header('Location: /' . ($error === null ? '' : '?' . http_build_query(['error' => $error])), true, 303);
    exit;
}

function close(Rooms $rooms, Client $defer, string $room, int $seconds): void
{
    $token = bin2hex(random_bytes(8));
    $until = time() + $seconds;
    // Closed before the restore is scheduled, so that the restore can never come first.
    $before = $rooms->close($room, $until, $token);
    try {
        $task = $defer->dispatch(RESTORE_QUEUE, ['room' => $room, 'token' => $token], [
            'delay' => $seconds,
            'key' => restore_key($room),
            'replace' => true,
        ]);
    } catch (DeferException $e) {
        $rooms->undo($room, $token, $before);
        back("Room $room is as it was: its restore could not be scheduled. " . $e->getMessage());
    }
    $rooms->note(sprintf('Room %s closed until %s: restore task %d %s', $room, date('H:i:s', $until), $task->id, match (true) {
        $task->replaced => 'moved to the new end of the lesson',
        $task->superseded !== null => "scheduled; task {$task->superseded} is restoring the old closing right now",
        default => 'scheduled',
    }));
}

function open_now(Rooms $rooms, Client $defer, string $room): void
{
    try {
        $cancelled = $defer->cancelKey(RESTORE_QUEUE, restore_key($room));
        $what = $cancelled === null ? 'no restore was scheduled' : "restore task {$cancelled->id} cancelled";
    } catch (ConflictException) {
        $what = 'its restore task is running at this moment';
    } catch (DeferException $e) {
        // The restore stays scheduled: it will find this closing gone and do nothing.
        $what = 'its restore could not be cancelled (' . $e->getMessage() . ')';
    }
    $rooms->open($room, "Room $room opened by the teacher: $what");
}

if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
    header('Allow: POST', true, 405);
    exit;
}
$room = (string) ($_POST['room'] ?? '');
if (!in_array($room, ROOMS, true)) {
    back(sprintf('There is no room "%s".', $room));
}
$rooms = new Rooms(setting('ROOMS_FILE'), ROOMS);
$defer = new Client(setting('DEFER_URL'));

switch ($_POST['action'] ?? '') {
    case 'close':
        $seconds = filter_var($_POST['seconds'] ?? setting('LESSON_SECONDS'), FILTER_VALIDATE_INT, ['options' => ['min_range' => 1, 'max_range' => 86400]]);
        if ($seconds === false) {
            back('The lesson lasts from 1 to 86400 seconds.');
        }
        close($rooms, $defer, $room, $seconds);
        break;
    case 'open':
        open_now($rooms, $defer, $room);
        break;
    default:
        back('The page sent no action (close or open).');
}
back();
